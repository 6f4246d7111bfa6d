"""What the loopback test scripts (tests/dist/, tests/deploy/) share: named checks that make
the exit code, and free ports."""
import socket

failures = []


def check(name, ok, detail=""):
    """Prints the check's outcome; a failed one is remembered for summary()."""
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def summary(seconds):
    """The last line the ctest wrappers look for, and the exit code."""
    if failures:
        print(f"{len(failures)} checks failed in {seconds:.1f} s: " + "; ".join(failures))
        return 1
    print(f"all checks passed in {seconds:.1f} s")
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
