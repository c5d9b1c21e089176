class Model:
    async def predict(self, inputs):
        return inputs
