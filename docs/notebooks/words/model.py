"""Streams the input text back word by word, upper-cased: a stand-in for a text generator."""

from collections.abc import Iterator

from pydantic import BaseModel


class Request(BaseModel):
    text: str


class Model:
    def predict(self, inputs: Request) -> Iterator[str]:
        for word in inputs.text.split():
            yield word.upper() + " "
