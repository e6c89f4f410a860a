"""Wall time of ``accord demo`` (and of each of its phases), on a quiet machine or beside CPU-bound work.

``--busy N`` starts N CPU-bound processes (``while True: pass``) before the demo and stops them after it, as other
work on a laptop would keep its cores busy. Every line the demo prints is shown with the seconds since the start, so
the gaps between lines are the phases; the one-minute load average is printed at the start and the end, with the
CPU time the demo used (what other work on the machine does not change much).

    python benchmarks/demo_time.py                 # quiet
    python benchmarks/demo_time.py --busy 2        # both cores of a 2-core machine kept busy
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside the demo")
    parser.add_argument("demo_args", nargs="*", help="extra arguments for accord demo (after --)")
    args = parser.parse_args()

    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(3 if burners else 0)
        print(f"busy processes beside: {args.busy}; load average at the start {os.getloadavg()[0]:.2f}; "
              f"CPUs {os.cpu_count()}", flush=True)
        command = [sys.executable, "-m", "accord.cli", "demo", "--quiet", *args.demo_args]
        started = time.perf_counter()
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as demo:
            for line in demo.stdout:
                print(f"[{time.perf_counter() - started:6.1f}s] {line}", end="", flush=True)
        elapsed = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the demo only: the burners are not reaped yet
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"accord demo: exit {demo.returncode}, {elapsed:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s of CPU; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    return demo.returncode


if __name__ == "__main__":
    sys.exit(main())
