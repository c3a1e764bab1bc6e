import sys

from webapp.client.cli import main

sys.exit(main())
