from benchmarks.common import run_main
from benchmarks.recovery.cli import main

if __name__ == "__main__":  # a spawned worker imports this module again, and must not run the benchmark
    raise SystemExit(run_main(main))
