%% `-include_lib("mongooseim/include/jlib.hrl")': the test host's copy.
-include("../../jlib.hrl").
