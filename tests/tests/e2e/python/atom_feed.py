"""Parses an Atom document with feedparser (a third-party feed reader) and prints what a reader
would see, as JSON: whether the document is well-formed (`bozo`), the feed's version, id, title,
updated and links, and each entry's id, title, link, author, dates, tags and content.

Usage: atom_feed.py FILE
"""

import json
import sys

import feedparser


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    parsed = feedparser.parse(data)
    feed = parsed.feed
    out = {
        "bozo": int(parsed.bozo),
        "bozo_exception": str(parsed.get("bozo_exception", "")),
        "version": parsed.version,
        "id": feed.get("id"),
        "title": feed.get("title"),
        "updated": feed.get("updated"),
        "updated_parsed": bool(feed.get("updated_parsed")),
        "links": [(l.get("rel"), l.get("href")) for l in feed.get("links", [])],
        "entries": [
            {
                "id": e.get("id"),
                "title": e.get("title"),
                "link": e.get("link"),
                "author": e.get("author"),
                "published_parsed": bool(e.get("published_parsed")),
                "updated_parsed": bool(e.get("updated_parsed")),
                "tags": [t.get("term") for t in e.get("tags", [])],
                "summary": e.get("summary"),
                "content": [c.get("value") for c in e.get("content", [])],
            }
            for e in parsed.entries
        ],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
