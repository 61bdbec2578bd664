"""Hidden Markov models: the model, its emissions and the sequence layouts."""
