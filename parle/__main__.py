import sys

from parle.cli import main

sys.exit(main())
