"""User models: Keras models of listener response trained on session logs. Built in
issue #4."""
