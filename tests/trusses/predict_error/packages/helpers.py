def crash(x):
    raise Exception("Crashed in `crash`.")
