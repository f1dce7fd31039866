import sys

from fastmf.app.cli import main

sys.exit(main())
