"""One module per subcommand: add_arguments(name, parser) and the cmd_* functions."""


def shared_option(parser, *flags, **kwargs) -> None:
    """Give a command one of the CLI's shared options (--json, --path, ...) unless cli.py already
    gives it to this command: works whichever set of shared options cli.py hands out."""
    import argparse
    try:
        parser.add_argument(*flags, **kwargs)
    except argparse.ArgumentError:
        pass
