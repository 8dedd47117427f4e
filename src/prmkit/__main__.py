"""``python -m prmkit ...``: the CLI, for launchers that take a module (``torchrun -m prmkit``)."""

from prmkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
