"""Run the client tests (unittest, verbose) and end with one line
"python client tests: N passed, M failed" for tools/test.sh to count."""

import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
passed = result.testsRun - failed - len(result.skipped)
if result.testsRun == 0:
    failed = 1
print(f"python client tests: {passed} passed, {failed} failed", flush=True)
sys.exit(0 if failed == 0 else 1)
