%% `-include_lib("mongooseim/include/mongoose_ns.hrl")': the test host's copy.
-include("../../mongoose_ns.hrl").
