import sys

from nomira.cli import main

sys.exit(main())
