%% `-include_lib("mongooseim/include/mongoose.hrl")': the test host's copy.
-include("../../mongoose.hrl").
