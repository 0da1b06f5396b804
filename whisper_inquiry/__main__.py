import sys

from whisper_inquiry.cli import main

sys.exit(main())
