%% `-include_lib("mongooseim/include/mongoose_logger.hrl")': the test host's copy.
-include("../../mongoose_logger.hrl").
