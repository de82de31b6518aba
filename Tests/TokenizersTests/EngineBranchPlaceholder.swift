// Placeholder so that the package builds on the `engine` branch before the tokenizer tests land
// on main; removed when main is merged.
import Testing
