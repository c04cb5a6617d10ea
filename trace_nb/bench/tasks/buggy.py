"""Twelve small buggy functions, each with its fix and visible and hidden tests.

Written for this benchmark (not copied from a data set). The optimizer sees the buggy
source and the outcome of the *visible* tests; the score counts the *hidden* tests.
"""

from __future__ import annotations

# ruff: noqa: E501 - tables of test cases read better on one line each


def running_max(xs):
    """Return the list of running maxima of xs: element i is max(xs[:i+1])."""
    out, best = [], 0
    for x in xs:
        best = max(best, x)
        out.append(best)
    return out


def is_palindrome(s):
    """True when s reads the same backwards, ignoring case and non-alphanumeric characters."""
    kept = [c for c in s if c.isalnum()]
    return kept == kept[::-1]


def fizzbuzz(n):
    """'Fizz' for multiples of 3, 'Buzz' for multiples of 5, 'FizzBuzz' for both, else str(n)."""
    if n % 3 == 0:
        return "Fizz"
    if n % 5 == 0:
        return "Buzz"
    if n % 15 == 0:
        return "FizzBuzz"
    return str(n)


def median(xs):
    """The median of a non-empty list of numbers (mean of the two middle values when even)."""
    xs = sorted(xs)
    return xs[len(xs) // 2]


def count_vowels(s):
    """Number of vowels (a, e, i, o, u, either case) in s."""
    return sum(1 for c in s if c in "aeiou")


def flatten(nested):
    """Flatten arbitrarily nested lists into one flat list, keeping the order."""
    out = []
    for item in nested:
        if isinstance(item, list):
            out.extend(item)
        else:
            out.append(item)
    return out


def binary_search(xs, target):
    """Index of target in the sorted list xs, or -1 when it is absent."""
    lo, hi = 0, len(xs) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] == target:
            return mid
        if xs[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def word_count(text):
    """A dict mapping each whitespace-separated word of text to how often it occurs."""
    counts = {}
    for word in text.split(" "):
        counts[word] = counts.get(word, 0) + 1
    return counts


def dedupe(xs):
    """The items of xs without repeats, keeping the first occurrence's order."""
    return sorted(set(xs))


def chunk(xs, n):
    """Split xs into consecutive chunks of size n; the last chunk may be shorter."""
    return [xs[i : i + n] for i in range(0, len(xs) - n + 1, n)]


def gcd(a, b):
    """Greatest common divisor of two non-negative integers (gcd(0, 0) == 0)."""
    while b:
        a, b = b, a % b
    return b


def caesar(text, shift):
    """Shift each lowercase letter of text by shift places, wrapping around; keep other characters."""
    return "".join(chr(ord(c) + shift) if c.islower() else c for c in text)


FUNCTIONS = [
    running_max,
    is_palindrome,
    fizzbuzz,
    median,
    count_vowels,
    flatten,
    binary_search,
    word_count,
    dedupe,
    chunk,
    gcd,
    caesar,
]

FIXES = {
    "running_max": "def running_max(xs):\n    out, best = [], None\n    for x in xs:\n        best = x if best is None else max(best, x)\n        out.append(best)\n    return out\n",
    "is_palindrome": "def is_palindrome(s):\n    kept = [c.lower() for c in s if c.isalnum()]\n    return kept == kept[::-1]\n",
    "fizzbuzz": "def fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n    if n % 3 == 0:\n        return 'Fizz'\n    if n % 5 == 0:\n        return 'Buzz'\n    return str(n)\n",
    "median": "def median(xs):\n    xs = sorted(xs)\n    m = len(xs) // 2\n    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2\n",
    "count_vowels": "def count_vowels(s):\n    return sum(1 for c in s.lower() if c in 'aeiou')\n",
    "flatten": "def flatten(nested):\n    out, stack = [], [iter(nested)]\n    while stack:\n        for item in stack[-1]:\n            if isinstance(item, list):\n                stack.append(iter(item))\n                break\n            out.append(item)\n        else:\n            stack.pop()\n    return out\n",
    "binary_search": "def binary_search(xs, target):\n    lo, hi = 0, len(xs) - 1\n    while lo <= hi:\n        mid = (lo + hi) // 2\n        if xs[mid] == target:\n            return mid\n        if xs[mid] < target:\n            lo = mid + 1\n        else:\n            hi = mid - 1\n    return -1\n",
    "word_count": "def word_count(text):\n    counts = {}\n    for word in text.split():\n        counts[word] = counts.get(word, 0) + 1\n    return counts\n",
    "dedupe": "def dedupe(xs):\n    seen, out = set(), []\n    for x in xs:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out\n",
    "chunk": "def chunk(xs, n):\n    return [xs[i:i + n] for i in range(0, len(xs), n)]\n",
    "gcd": "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n",
    "caesar": "def caesar(text, shift):\n    return ''.join(chr((ord(c) - 97 + shift) % 26 + 97) if c.islower() else c for c in text)\n",
}

# name -> (visible tests, hidden tests); a test is (args, expected result)
TESTS = {
    "running_max": (
        [(([1, 3, 2],), [1, 3, 3]), (([-2, -5, -1],), [-2, -2, -1])],
        [(([],), []), (([5],), [5]), (([-3, -7],), [-3, -3]), (([2, 2, 9, 1],), [2, 2, 9, 9])],
    ),
    "is_palindrome": (
        [(("abba",), True), (("Racecar",), True)],
        [
            (("A man, a plan, a canal: Panama",), True),
            (("hello",), False),
            (("",), True),
            (("No lemon, no melon",), True),
        ],
    ),
    "fizzbuzz": (
        [((3,), "Fizz"), ((15,), "FizzBuzz")],
        [((5,), "Buzz"), ((30,), "FizzBuzz"), ((7,), "7"), ((9,), "Fizz")],
    ),
    "median": (
        [(([3, 1, 2],), 2), (([4, 1, 3, 2],), 2.5)],
        [(([5],), 5), (([1, 2],), 1.5), (([7, 1, 5, 3, 9, 11],), 6.0), (([2, 8, 4],), 4)],
    ),
    "count_vowels": (
        [(("hello",), 2), (("AEIOU",), 5)],
        [(("",), 0), (("Python",), 1), (("Queue IO",), 6), (("rhythm",), 0)],
    ),
    "flatten": (
        [(([1, [2, 3]],), [1, 2, 3]), (([1, [2, [3, [4]]]],), [1, 2, 3, 4])],
        [
            (([],), []),
            (([[[]]],), []),
            (([[1], 2, [[3], 4]],), [1, 2, 3, 4]),
            ((["a", ["b"]],), ["a", "b"]),
        ],
    ),
    "binary_search": (
        [(([1, 3, 5, 7], 5), 2), (([1, 3, 5, 7], 7), 3)],
        [(([1, 3, 5, 7], 1), 0), (([1, 3, 5, 7], 4), -1), (([], 3), -1), (([2], 2), 0)],
    ),
    "word_count": (
        [(("a b a",), {"a": 2, "b": 1}), (("x  y",), {"x": 1, "y": 1})],
        [
            (("",), {}),
            ((" hi  hi ",), {"hi": 2}),
            (("one\ttwo one",), {"one": 2, "two": 1}),
            (("z",), {"z": 1}),
        ],
    ),
    "dedupe": (
        [(([3, 1, 3, 2],), [3, 1, 2]), ((["b", "a", "b"],), ["b", "a"])],
        [(([],), []), (([1, 1, 1],), [1]), (([5, 4, 5, 3, 4],), [5, 4, 3]), (([2, 1],), [2, 1])],
    ),
    "chunk": (
        [(([1, 2, 3, 4], 2), [[1, 2], [3, 4]]), (([1, 2, 3], 2), [[1, 2], [3]])],
        [
            (([], 3), []),
            (([1], 3), [[1]]),
            (([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]),
            (([1, 2], 1), [[1], [2]]),
        ],
    ),
    "gcd": ([((12, 8), 4), ((7, 0), 7)], [((0, 0), 0), ((9, 6), 3), ((17, 5), 1), ((0, 4), 4)]),
    "caesar": (
        [(("abc", 1), "bcd"), (("xyz", 2), "zab")],
        [
            (("hello, world", 3), "khoor, zruog"),
            (("A b", 1), "A c"),
            (("zz", 1), "aa"),
            (("", 5), ""),
        ],
    ),
}
