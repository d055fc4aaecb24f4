"""The local sandbox: moto, a HealthOmics fake, an NGS360-style receiver, and `demo`.

Never shipped to Lambda; imported only by `demo`, `doctor`-free tests and the test suite."""
