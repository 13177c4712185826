import sys

from gsasrec.cli import main

sys.exit(main())
