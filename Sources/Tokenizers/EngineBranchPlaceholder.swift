// Placeholder so that the package builds on the `engine` branch before the Tokenizers sources land
// on main; removed when main is merged.
enum EngineBranchPlaceholder {}
