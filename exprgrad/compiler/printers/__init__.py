"""Printers: a scheduled `program.Function` → the text of one target.

`python` writes plain Python (math module, no dependencies).  A printer
only renders: every decision (names, inlining, branches, order) is the
scheduler's, so two targets of one function compute the same thing.
"""
