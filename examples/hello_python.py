"""A lightweight Python pipeline for kfp-box: two Python components passing a value.

Compile it with the kfp SDK (pip install kfp) into hello-python.yaml:

    python3 examples/hello_python.py

then submit it:

    kfp-box run submit examples/hello-python.yaml -p n=10 --watch

Each step runs in a Python environment of its own (a venv on the host runtime, the
python image with containerd) that pip fills with the kfp SDK; see the README's
"Lightweight Python components" for where the box gets the wheels offline.
"""
import os

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def square_sum(n: int) -> int:
    """The sum of the squares of 1..n."""
    total = sum(i * i for i in range(1, n + 1))
    print(f"sum of squares up to {n} = {total}")
    return total


@dsl.component(base_image="python:3.11")
def describe(total: int) -> str:
    """Says whether the total is even."""
    kind = "even" if total % 2 == 0 else "odd"
    message = f"{total} is {kind}"
    print(message)
    return message


@dsl.pipeline(name="hello-python", description="Two lightweight Python components")
def hello_python(n: int = 10) -> str:
    total = square_sum(n=n)
    return describe(total=total.output).output


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hello-python.yaml")
    compiler.Compiler().compile(hello_python, out)
    print(f"wrote {out}")
