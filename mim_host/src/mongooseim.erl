%% @doc The test host's `mongooseim' module: only the types other modules
%% refer to (`mongooseim:host_type()' and friends), as MongooseIM exports them.
-module(mongooseim).

-type host_type() :: binary().
-type host_type_or_global() :: host_type() | global.
-type domain_name() :: jid:lserver().

-export_type([host_type/0, host_type_or_global/0, domain_name/0]).
