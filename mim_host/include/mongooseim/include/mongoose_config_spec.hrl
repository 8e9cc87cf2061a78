%% `-include_lib("mongooseim/include/mongoose_config_spec.hrl")': the test host's copy.
-include("../../mongoose_config_spec.hrl").
