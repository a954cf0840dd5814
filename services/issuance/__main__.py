import sys

from services.issuance.cli import main

sys.exit(main())
