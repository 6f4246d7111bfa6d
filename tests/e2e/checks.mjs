// The checks an e2e script registers, and the loop that runs them in order: one ok/FAIL line
// each, a summary, and exit status 0 only when every check passed.
const checks = [];

export const check = (name, fn) => checks.push({ name, fn });

export async function runChecks() {
  const started = Date.now();
  let failed = 0;
  for (const { name, fn } of checks) {
    try {
      await fn();
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack ?? e}`);
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log((failed ? `${failed} of ${checks.length} checks failed` : `all ${checks.length} passed`) +
              ` in ${seconds} s`);
  process.exit(failed ? 1 : 0);
}
