%% @doc The test host's `jid' module: the API of mongoose_jid 2.x.
%%
%% mongoose_jid normalises parts with stringprep (a C library). Here the
%% profiles are approximated with Unicode case folding and NFKC
%% normalisation, plus the characters each profile forbids; for the ASCII and
%% common Unicode JIDs tests use, the results are the same.
-module(jid).

-export([make/3, make/1, make_bare/2, make_noprep/3, make_noprep/1]).
-export([from_binary/1, from_binary_noprep/1]).
-export([binary_to_bare/1, to_bare_binary/1, to_binary/1]).
-export([are_equal/2, are_bare_equal/2, is_nodename/1]).
-export([nodeprep/1, nameprep/1, resourceprep/1]).
-export([luser/1, lserver/1, lresource/1]).
-export([to_lower/1, to_lus/1, to_bare/1]).
-export([replace_resource/2, replace_resource_noprep/2]).
-export([str_tolower/1]).

-include("jid.hrl").

-type user() :: binary().
-type server() :: binary().
-type resource() :: binary().
-type luser() :: binary().
-type lserver() :: binary().
-type lresource() :: binary().

-type jid() :: #jid{}.
-type ljid() :: {luser(), lserver(), lresource()}.
-type simple_jid() :: {user(), server(), resource()}.
-type simple_bare_jid() :: {luser(), lserver()}.
-type literal_jid() :: binary().

-export_type([jid/0, ljid/0, simple_jid/0, simple_bare_jid/0, literal_jid/0,
              user/0, server/0, resource/0, luser/0, lserver/0, lresource/0]).

%% Each prepared part must stay below this many bytes, the whole JID below
%% the RFC 7622 limit (as in mongoose_jid).
-define(PART_LIMIT, 1024).
-define(JID_LIMIT, 3071).

%%--------------------------------------------------------------------
%% Construction
%%--------------------------------------------------------------------

-spec make(user(), server(), resource()) -> jid() | error.
make(User, Server, Resource) ->
    case {nodeprep(User), nameprep(Server), resourceprep(Resource)} of
        {LUser, LServer, LResource} when LUser =/= error, LServer =/= error,
                                         LResource =/= error ->
            #jid{luser = LUser, lserver = LServer, lresource = LResource};
        _ ->
            error
    end.

-spec make(simple_jid()) -> jid() | error.
make({User, Server, Resource}) ->
    make(User, Server, Resource).

-spec make_bare(user(), server()) -> jid() | error.
make_bare(User, Server) ->
    make(User, Server, <<>>).

-spec make_noprep(luser(), lserver(), lresource()) -> jid().
make_noprep(LUser, LServer, LResource) ->
    #jid{luser = LUser, lserver = LServer, lresource = LResource}.

-spec make_noprep(simple_jid()) -> jid().
make_noprep({LUser, LServer, LResource}) ->
    make_noprep(LUser, LServer, LResource).

%%--------------------------------------------------------------------
%% Parsing and printing
%%--------------------------------------------------------------------

-spec from_binary(binary()) -> jid() | error.
from_binary(Bin) ->
    case split(Bin) of
        {User, Server, Resource} -> make(User, Server, Resource);
        error -> error
    end.

-spec from_binary_noprep(binary()) -> jid() | error.
from_binary_noprep(Bin) ->
    case split(Bin) of
        {User, Server, Resource} -> make_noprep(User, Server, Resource);
        error -> error
    end.

-spec to_binary(simple_jid() | simple_bare_jid() | jid() | literal_jid()) -> binary().
to_binary(#jid{luser = U, lserver = S, lresource = R}) ->
    to_binary({U, S, R});
to_binary({U, S}) ->
    to_binary({U, S, <<>>});
to_binary({U, S, R}) ->
    iolist_to_binary([user_prefix(U), S, resource_suffix(R)]);
to_binary(Bin) when is_binary(Bin) ->
    Bin.

-spec to_bare_binary(ljid() | simple_bare_jid() | jid() | literal_jid()) -> binary() | error.
to_bare_binary(#jid{luser = U, lserver = S}) ->
    to_binary({U, S});
to_bare_binary({U, S}) ->
    to_binary({U, S});
to_bare_binary({U, S, _}) ->
    to_binary({U, S});
to_bare_binary(Bin) when is_binary(Bin) ->
    case binary_to_bare(Bin) of
        error -> error;
        Jid -> to_binary(Jid)
    end.

-spec binary_to_bare(binary()) -> jid() | error.
binary_to_bare(Bin) when is_binary(Bin) ->
    to_bare(from_binary(Bin)).

%%--------------------------------------------------------------------
%% Comparison and accessors
%%--------------------------------------------------------------------

-spec are_equal(jid(), jid()) -> boolean().
are_equal(#jid{} = A, #jid{} = B) ->
    A =:= B;
are_equal(_, _) ->
    false.

-spec are_bare_equal(jid() | ljid(), jid() | ljid()) -> boolean().
are_bare_equal(A, B) when (is_record(A, jid) orelse tuple_size(A) =:= 3),
                          (is_record(B, jid) orelse tuple_size(B) =:= 3) ->
    to_lus(A) =:= to_lus(B);
are_bare_equal(_, _) ->
    false.

-spec is_nodename(binary()) -> boolean().
is_nodename(<<>>) ->
    false;
is_nodename(User) ->
    nodeprep(User) =/= error.

-spec luser(jid() | ljid() | simple_bare_jid()) -> luser().
luser(#jid{luser = U}) -> U;
luser({U, _, _}) -> U;
luser({U, _}) -> U.

-spec lserver(jid() | ljid() | simple_bare_jid()) -> lserver().
lserver(#jid{lserver = S}) -> S;
lserver({_, S, _}) -> S;
lserver({_, S}) -> S.

-spec lresource(jid() | ljid() | simple_bare_jid()) -> lresource().
lresource(#jid{lresource = R}) -> R;
lresource({_, _, R}) -> R;
lresource({_, _}) -> <<>>.

-spec to_lower(simple_jid() | jid()) -> ljid() | error.
to_lower(#jid{luser = U, lserver = S, lresource = R}) ->
    {U, S, R};
to_lower({U, S, R}) ->
    case make(U, S, R) of
        error -> error;
        Jid -> to_lower(Jid)
    end.

-spec to_lus(jid() | ljid() | simple_bare_jid()) -> simple_bare_jid();
            (error) -> error.
to_lus(#jid{luser = U, lserver = S}) -> {U, S};
to_lus({U, S, _}) -> {U, S};
to_lus({U, S}) -> {U, S};
to_lus(error) -> error.

-spec to_bare(jid()) -> jid();
             (ljid()) -> ljid();
             (simple_bare_jid()) -> simple_bare_jid();
             (error) -> error.
to_bare(#jid{} = Jid) -> Jid#jid{lresource = <<>>};
to_bare({U, S, _}) -> {U, S, <<>>};
to_bare({U, S}) -> {U, S};
to_bare(error) -> error.

-spec replace_resource(jid(), resource()) -> jid() | error.
replace_resource(#jid{} = Jid, Resource) ->
    case resourceprep(Resource) of
        error -> error;
        LResource -> Jid#jid{lresource = LResource}
    end.

-spec replace_resource_noprep(jid(), lresource()) -> jid().
replace_resource_noprep(#jid{} = Jid, LResource) ->
    Jid#jid{lresource = LResource}.

%%--------------------------------------------------------------------
%% Preparation profiles
%%--------------------------------------------------------------------

%% @doc The user part: case folded, NFKC, without the characters XMPP
%% forbids in a localpart. May be empty.
-spec nodeprep(user()) -> luser() | error.
nodeprep(User) ->
    prepare(User, fun(Chars) -> string:casefold(Chars) end, fun forbidden_in_node/1).

%% @doc The domain part: case folded, NFKC, never empty.
-spec nameprep(server()) -> lserver() | error.
nameprep(<<>>) ->
    error;
nameprep(Server) ->
    prepare(Server, fun(Chars) -> string:casefold(Chars) end, fun forbidden_in_name/1).

%% @doc The resource part: NFKC only, case is kept.
-spec resourceprep(resource()) -> lresource() | error.
resourceprep(Resource) ->
    prepare(Resource, fun(Chars) -> Chars end, fun is_control/1).

-spec str_tolower(iodata()) -> binary() | error.
str_tolower(Value) when is_binary(Value); is_list(Value) ->
    case unicode:characters_to_binary(Value) of
        Bin when is_binary(Bin) -> unicode:characters_to_binary(string:casefold(Bin));
        _ -> error
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% Splits "user@server/resource": the first '/' starts the resource (which
%% may hold '@' and '/'); a single '@' before it ends the user part.
-spec split(binary()) -> {binary(), binary(), binary()} | error.
split(Bin) when is_binary(Bin), byte_size(Bin) > 0, byte_size(Bin) < ?JID_LIMIT ->
    {Bare, Resource} = case binary:split(Bin, <<"/">>) of
                           [B] -> {B, <<>>};
                           [B, R] -> {B, R}
                       end,
    case binary:split(Bare, <<"@">>, [global]) of
        [<<>>] -> error;
        [Server] -> {<<>>, Server, Resource};
        [User, Server] when User =/= <<>>, Server =/= <<>> -> {User, Server, Resource};
        _ -> error
    end;
split(_) ->
    error.

-spec prepare(term(), fun((unicode:chardata()) -> unicode:chardata()),
              fun((char()) -> boolean())) -> binary() | error.
prepare(Part, Fold, Forbidden) when is_binary(Part), byte_size(Part) < ?PART_LIMIT ->
    case unicode:characters_to_nfkc_binary(Part) of
        Norm when is_binary(Norm) ->
            Prepared = unicode:characters_to_binary(Fold(Norm)),
            Chars = unicode:characters_to_list(Prepared),
            case byte_size(Prepared) < ?PART_LIMIT andalso
                 not lists:any(Forbidden, Chars) of
                true -> Prepared;
                false -> error
            end;
        _ ->
            error
    end;
prepare(_, _, _) ->
    error.

-spec forbidden_in_node(char()) -> boolean().
forbidden_in_node(C) ->
    lists:member(C, "\"&'/:<>@") orelse is_space(C) orelse is_control(C).

-spec forbidden_in_name(char()) -> boolean().
forbidden_in_name(C) ->
    lists:member(C, "@/") orelse is_space(C) orelse is_control(C).

-spec is_space(char()) -> boolean().
is_space(C) ->
    C =:= $\s orelse C =:= 16#A0 orelse C =:= 16#3000 orelse (C >= 16#2000 andalso C =< 16#200B).

-spec is_control(char()) -> boolean().
is_control(C) ->
    C < 16#20 orelse (C >= 16#7F andalso C =< 16#9F).

-spec user_prefix(binary()) -> iodata().
user_prefix(<<>>) -> [];
user_prefix(User) -> [User, $@].

-spec resource_suffix(binary()) -> iodata().
resource_suffix(<<>>) -> [];
resource_suffix(Resource) -> [$/, Resource].
