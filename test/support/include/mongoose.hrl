%% The test host's mongoose.hrl: the macros production modules use.
-ifndef(MONGOOSE_HRL).
-define(MONGOOSE_HRL, true).

-define(MYHOSTS, mongoose_config:get_opt(hosts)).
-define(ALL_HOST_TYPES, mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types)).

-include("mongoose_logger.hrl").

-endif.
