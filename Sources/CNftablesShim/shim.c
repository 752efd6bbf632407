#include "CNftablesShim.h"
