#!/usr/bin/env python3
"""Prints the endpoint table of docs/api.md from a running admin's GET /api/v1/endpoints.
usage: scripts/api-table.py [http://127.0.0.1:5770]"""
import json
import sys
import urllib.request

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5770"
rows = json.load(urllib.request.urlopen(base + "/api/v1/endpoints"))
print("| Method | Path | Permission | What it does |")
print("|---|---|---|---|")
for r in rows:
    print("| `%s` | `%s` | `%s` | %s |" % (r["method"], r["path"], r["permission"],
                                        r["summary"].replace("|", "\\|")))
