"""Recommendation engine: plain numpy/scipy/scikit-learn estimators, no Flask, no SQLAlchemy."""
