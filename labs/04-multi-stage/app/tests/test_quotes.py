"""Unit tests of the quotes package (run in the build stage)."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from quotes import load_quotes

FIXTURES = Path(__file__).with_name("fixtures")


class QuotesTest(unittest.TestCase):
    def test_quotes_load(self) -> None:
        quotes = load_quotes()
        self.assertGreater(len(quotes), 3)
        self.assertTrue(all(q.strip() for q in quotes))

    def test_corpus_is_there(self) -> None:
        corpus = sorted(FIXTURES.glob("corpus-*.bin"))
        self.assertEqual(len(corpus), 6, "run tests/make_fixtures.py first")


if __name__ == "__main__":
    unittest.main()
