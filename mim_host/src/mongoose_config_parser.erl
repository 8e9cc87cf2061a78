%% @doc Test host: MongooseIM's config file parser.
%%
%% `parse_file/1' returns the processed options as `[{Key, Value}]', ready for
%% `mongoose_config:set_opts(maps:from_list(Opts))'; it takes a file path, or
%% the TOML text itself (test host extension). A bad config raises
%% `error({config_error, Text, Errors})', as MongooseIM's test build does (its
%% production build logs the errors and halts the node); each error is a map
%% with `class => error', `what', `text', `reason' and, for a node of the file,
%% `toml_path' (e.g. "outgoing_pools.http.default.connection.host") and
%% `toml_value'.
%%
%% After the TOML is processed, options set per host type are completed as in
%% MongooseIM: a global `{Key, global}' value is repeated for every host and
%% host type unless `[[host_config]]' sets its own (which replaces it), and each
%% `{modules, HostType}' map gets its modules' dependencies with their options
%% (gen_mod_deps:resolve_deps/2). Last, general backends that need an internal
%% database must have it configured (mongoose_config_spec:validate_backend_databases/1).
-module(mongoose_config_parser).

-export([parse_file/1]).
-export([build_state/3, get_opts/1]).

-callback parse_file(FileName :: file:filename_all()) -> state().

-export_type([state/0]).

-record(state, {opts = [] :: opts(),
                hosts = [] :: [binary()],
                host_types = [] :: [binary()]}).

-type opts() :: [{mongoose_config:key(), mongoose_config:value()}].
-type state() :: #state{}.

%% @doc The processed options of a TOML config file. The test host also
%% takes the TOML text itself (test host extension): an argument that names
%% no existing file but holds a newline, `=' or `[' is parsed as TOML (through
%% a temporary file, as the node reads its config).
-spec parse_file(file:filename_all() | unicode:chardata()) -> opts().
parse_file(FileNameOrToml) ->
    case classify(FileNameOrToml) of
        {toml, Toml} -> parse_text(Toml);
        file -> parse_path(FileNameOrToml)
    end.

-spec parse_path(file:filename_all()) -> opts().
parse_path(FileName) ->
    Parser = parser_module(filename:extension(FileName)),
    get_opts(Parser:parse_file(FileName)).

-spec parse_text(binary()) -> opts().
parse_text(Toml) ->
    Path = temp_file_name(),
    ok = file:write_file(Path, Toml),
    try
        parse_path(Path)
    after
        _ = file:delete(Path)
    end.

%% A path of an existing file is a file; otherwise text that a path would
%% hardly hold (a newline, `=', `[') is TOML, and the rest a missing file
%% (which the parser reports as such).
-spec classify(file:filename_all() | unicode:chardata()) -> file | {toml, binary()}.
classify(Arg) ->
    case is_existing_file(Arg) of
        true ->
            file;
        false ->
            case to_text(Arg) of
                {ok, Text} ->
                    case binary:match(Text, [<<"\n">>, <<"=">>, <<"[">>]) of
                        nomatch -> file;
                        _ -> {toml, Text}
                    end;
                error ->
                    file
            end
    end.

-spec to_text(term()) -> {ok, binary()} | error.
to_text(Arg) ->
    try unicode:characters_to_binary(Arg) of
        Text when is_binary(Text) -> {ok, Text};
        _Incomplete -> error
    catch
        error:badarg -> error
    end.

-spec is_existing_file(term()) -> boolean().
is_existing_file(Arg) ->
    try
        filelib:is_regular(Arg)
    catch
        _:_ -> false
    end.

-spec temp_file_name() -> file:filename().
temp_file_name() ->
    Dir = os:getenv("TMPDIR", "/tmp"),
    Name = io_lib:format("mongooseim_config_~s_~p.toml",
                         [os:getpid(), erlang:unique_integer([positive])]),
    filename:join(Dir, lists:flatten(Name)).

parser_module(Ext) ->
    case string:lowercase(unicode:characters_to_list(Ext)) of
        ".toml" ->
            mongoose_config_parser_toml;
        _ ->
            error({config_error, "Invalid configuration file name",
                   [#{class => error, what => unsupported_config_format,
                      text => "The config file must be a .toml file",
                      extension => Ext}]})
    end.

%% @doc Completes processed top-level options into the final state.
-spec build_state([binary()], [binary()], opts()) -> state().
build_state(Hosts, HostTypes, Opts) ->
    State = #state{opts = Opts, hosts = Hosts, host_types = HostTypes},
    Final = post_process_modules(unfold_globals(State)),
    ok = mongoose_config_spec:validate_backend_databases(Final#state.opts),
    Final.

-spec get_opts(state()) -> opts().
get_opts(#state{opts = Opts}) ->
    Opts.

%% Post-processing

%% `{{Key, global}, V}' becomes `{{Key, HT}, V}' for every host type HT, unless
%% host_config set `{{Key, HT}, V2}', which wins. Keys without a global value
%% (e.g. `{outgoing_pools, HT}') stay for the host types that set them.
unfold_globals(State = #state{opts = Opts, hosts = Hosts, host_types = HostTypes}) ->
    {PerHostType, Simple} = lists:partition(fun({K, _}) -> is_tuple(K) end, Opts),
    Grouped = lists:foldl(fun({{Key, HT}, V}, Acc) ->
                                  maps:update_with(Key, fun(M) -> M#{HT => V} end,
                                                   #{HT => V}, Acc)
                          end, #{}, PerHostType),
    AllHostTypes = Hosts ++ HostTypes,
    Unfolded = lists:flatmap(fun({Key, ByHT}) -> unfold(Key, ByHT, AllHostTypes) end,
                             lists:sort(maps:to_list(Grouped))),
    State#state{opts = Simple ++ Unfolded}.

unfold(Key, ByHT = #{global := Global}, AllHostTypes) ->
    [{{Key, HT}, maps:get(HT, ByHT, Global)} || HT <- AllHostTypes];
unfold(Key, ByHT, _AllHostTypes) ->
    [{{Key, HT}, V} || {HT, V} <- lists:sort(maps:to_list(ByHT))].

post_process_modules(State = #state{opts = Opts}) ->
    State#state{opts = [resolve_module_deps(Opt) || Opt <- Opts]}.

resolve_module_deps({{modules, HostType}, Modules}) ->
    {{modules, HostType}, gen_mod_deps:resolve_deps(HostType, Modules)};
resolve_module_deps(Opt) ->
    Opt.
