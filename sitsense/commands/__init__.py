"""One module per ``sitsense`` subcommand: ``add_arguments(parser)`` and ``run(args)``."""
