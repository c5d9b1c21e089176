from pydantic import BaseModel


class EchoIn(BaseModel):
    text: str
    n: int = 1


class Model:
    def predict(self, inputs: EchoIn) -> dict:
        return {"text": inputs.text, "n": inputs.n}
