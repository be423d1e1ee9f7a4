"""The sandbox run modes, strongest first (shared by the grader and the worker; imports nothing).

What each mode protects is the threat model in autograder/README.md.
"""
MODES = ("root", "userns", "landlock", "plain")
