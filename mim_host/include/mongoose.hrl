%% The test host's mongoose.hrl: the macros production modules use, with
%% MongooseIM's names and meanings.
-ifndef(MONGOOSE_HRL).
-define(MONGOOSE_HRL, true).

%% The `vsn' of the `mongooseim' application, or `undefined' when it is not
%% loaded (always so in the test host). MongooseIM's macro fails then; the
%% fun keeps the variable out of the caller's scope.
-define(MONGOOSE_VERSION,
        (fun() ->
                 case application:get_key(mongooseim, vsn) of
                     {ok, MongooseVersion__} -> MongooseVersion__;
                     undefined -> undefined
                 end
         end)()).

-define(MYHOSTS, mongoose_config:get_opt(hosts)).
-define(ALL_HOST_TYPES, mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types)).
-define(MYNAME, mongoose_config:get_opt(default_server_domain)).
-define(MYLANG, mongoose_config:get_opt(language)).
-define(XMPP_VERSION, <<"1.0">>).

-define(CONFIG_PATH, "etc/mongooseim.toml").

-include("mongoose_logger.hrl").

-ifdef(PROD_NODE).
-define(ASSERT_MODULE(M), ok).
-else.
-define(ASSERT_MODULE(M), M:module_info(module)).
-endif.

-endif.
