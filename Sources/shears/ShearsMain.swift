print("shears")
