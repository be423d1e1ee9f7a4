"""Hidden checks for course_lib.rendering, one module per reference module (rays, sampling, encoding, volume,
sphere_tracing)."""
