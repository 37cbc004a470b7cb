"""``python -m skeltools``: the command line."""
from skeltools.cli import main

main(prog_name="skeltools")
