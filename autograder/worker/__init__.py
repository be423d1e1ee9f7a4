"""The worker side of the autograder: everything that runs in, or starts, the sandboxed processes.

Imports run one way only: the grader side (``autograder.*``) may import from here (the wire format, the run
modes, the rebuilt special arguments, the gradient surrogate), and nothing here imports the grader side or
``course_lib`` (a test checks both). Modules: ``zygote`` (fork server and supervisor), ``confine`` (confine the
runner), ``runner`` (define the student's code and run the cases), ``isolation`` (OS primitives), ``wire``
(data format and framed messages), ``specials`` (arguments rebuilt from specs), ``modes``.
"""
