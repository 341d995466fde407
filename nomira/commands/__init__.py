"""One module per subcommand: add_arguments(name, parser) and the cmd_* functions."""
