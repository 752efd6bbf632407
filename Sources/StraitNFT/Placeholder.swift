enum StraitNFTPlaceholder {}
