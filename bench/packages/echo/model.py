class Model:
    def load(self):
        self.ready = True

    def predict(self, inputs):
        return inputs
