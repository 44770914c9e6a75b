"""Networks: the measuring networks trained on the face world (and, later, generators)."""
