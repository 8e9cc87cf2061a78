%% @doc A MongooseIM module that only has a config spec, for config tests.
%%
%% Its spec uses every kind of node the parser handles: option types,
%% validators, defaults, a required key, a nested section included always, a
%% list of unique items, format_items, a process function, and MongooseIM's
%% shared parts (iqdisc, wpool).
-module(mod_config_dummy).

-export([config_spec/0, supported_features/0, process_range/1]).

-include("mongoose_config_spec.hrl").

-spec config_spec() -> mongoose_config_spec:config_section().
config_spec() ->
    #section{
       items = #{<<"name">> => #option{type = binary, validate = non_empty},
                 <<"label">> => #option{type = string},
                 <<"kind">> => #option{type = atom, validate = {enum, [plain, fancy]}},
                 <<"count">> => #option{type = integer, validate = positive},
                 <<"max_size">> => #option{type = int_or_infinity, validate = non_negative},
                 <<"ratio">> => #option{type = float},
                 <<"enabled">> => #option{type = boolean},
                 <<"port">> => #option{type = integer, validate = port},
                 <<"backend_module">> => #option{type = atom, validate = module},
                 <<"pool">> => #option{type = atom, validate = pool_name},
                 <<"tags">> => #list{items = #option{type = binary, validate = non_empty},
                                     validate = unique},
                 <<"range">> => #section{items = #{<<"low">> => #option{type = integer},
                                                   <<"high">> => #option{type = integer}},
                                         required = all,
                                         process = fun ?MODULE:process_range/1},
                 <<"limits">> => #section{items = #{default => #option{type = integer,
                                                                       validate = non_negative}},
                                          validate_keys = non_empty},
                 <<"extra">> => #section{items = #{<<"depth">> => #option{type = integer}},
                                         defaults = #{<<"depth">> => 1},
                                         include = always},
                 <<"iqdisc">> => mongoose_config_spec:iqdisc(),
                 <<"wpool">> => mongoose_config_spec:wpool(#{<<"strategy">> => available_worker})
                },
       required = [<<"name">>],
       defaults = #{<<"kind">> => plain,
                    <<"count">> => 1,
                    <<"max_size">> => infinity,
                    <<"enabled">> => false,
                    <<"tags">> => []}}.

-spec supported_features() -> [atom()].
supported_features() ->
    [dynamic_domains].

%% @doc `{Low, High}', with Low =< High.
-spec process_range(#{low := integer(), high := integer()}) -> {integer(), integer()}.
process_range(#{low := Low, high := High}) when Low =< High ->
    {Low, High}.
