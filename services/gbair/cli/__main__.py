import sys

from gbair.cli import main

sys.exit(main())
