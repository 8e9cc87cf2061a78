%% @doc The test host's `mongoose_hooks': the hooks the event pusher runs or
%% handles, with MongooseIM's signatures, accumulators and parameters.
%% Each runs `gen_hook:run_fold/4' and returns the final accumulator, whether
%% a handler stopped the run or not.
-module(mongoose_hooks).

-include_lib("kernel/include/logger.hrl").

%% hooks the event pusher runs
-export([push_event/2, push_notifications/4, inbox_unread_count/2]).
%% hooks the event pusher handles
-export([filter_local_packet/1, user_available/2, unset_presence/3,
         unacknowledged_message/2, remove_user/3, remove_domain/2,
         does_user_exist/3]).

-type filter_packet_acc() :: {From :: jid:jid(), To :: jid:jid(),
                              Acc :: mongoose_acc:t(), Packet :: exml:element()}.
-type simple_acc() :: #{}.

-export_type([filter_packet_acc/0, simple_acc/0]).

%% @doc Runs `push_event' for the accumulator's host type with hook
%% accumulator `#{acc => Acc, metadata => #{}}'; returns that map.
-spec push_event(mongoose_acc:t(), term()) -> #{acc := mongoose_acc:t(), metadata := map(),
                                                 _ => _}.
push_event(Acc, Event) ->
    run_for_host_type(push_event, mongoose_acc:host_type(Acc),
                      #{acc => Acc, metadata => #{}}, #{event => Event}).

%% @doc Sends push notifications through a push service (e.g. MongoosePush).
%% Acc is `ok' when the caller wants the result synchronously.
-spec push_notifications(mongooseim:host_type(), ok | mongoose_acc:t(),
                         [#{binary() => binary()}], #{binary() => binary()}) ->
          ok | mongoose_acc:t() | {error, term()}.
push_notifications(HostType, Acc, NotificationForms, Options) ->
    run_for_host_type(push_notifications, HostType, Acc,
                      #{options => Options, notification_forms => NotificationForms}).

%% @doc Asks the inbox for the user's unread count; handlers store it in the
%% accumulator (`inbox', `unread_count').
-spec inbox_unread_count(mongoose_acc:t(), jid:jid()) -> mongoose_acc:t().
inbox_unread_count(Acc, User) ->
    run_for_host_type(inbox_unread_count, mongoose_acc:host_type(Acc), Acc, #{user => User}).

%% @doc Runs for each stanza delivered locally; `drop' drops it.
-spec filter_local_packet(filter_packet_acc()) -> filter_packet_acc() | drop.
filter_local_packet({_From, _To, Acc, _Packet} = FilterAcc) ->
    run_for_host_type(filter_local_packet, mongoose_acc:host_type(Acc), FilterAcc, #{}).

-spec user_available(mongoose_acc:t(), jid:jid()) -> mongoose_acc:t().
user_available(Acc, JID) ->
    run_for_host_type(user_available, mongoose_acc:host_type(Acc), Acc, #{jid => JID}).

-spec unset_presence(mongoose_acc:t(), jid:jid(), binary()) -> mongoose_acc:t().
unset_presence(Acc, JID, Status) ->
    run_for_host_type(unset_presence, mongoose_acc:host_type(Acc), Acc,
                      #{jid => JID, status => Status}).

-spec unacknowledged_message(mongoose_acc:t(), jid:jid()) -> mongoose_acc:t().
unacknowledged_message(Acc, JID) ->
    run_for_host_type(unacknowledged_message, mongoose_acc:host_type(Acc), Acc, #{jid => JID}).

-spec remove_user(mongoose_acc:t(), jid:lserver(), jid:luser()) -> mongoose_acc:t().
remove_user(Acc, LServer, LUser) ->
    run_for_host_type(remove_user, mongoose_acc:host_type(Acc), Acc,
                      #{jid => jid:make_bare(LUser, LServer)}).

-spec remove_domain(mongooseim:host_type(), jid:lserver()) -> #{failed := [term()], _ => _}.
remove_domain(HostType, Domain) ->
    run_for_host_type(remove_domain, HostType, #{failed => []}, #{domain => Domain}).

-spec does_user_exist(mongooseim:host_type(), jid:jid(), atom()) -> boolean().
does_user_exist(HostType, JID, RequestType) ->
    run_for_host_type(does_user_exist, HostType, false,
                      #{jid => JID, request_type => RequestType}).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% An undefined host type runs no hook: logged, and the accumulator returned.
-spec run_for_host_type(gen_hook:hook_name(), mongooseim:host_type() | undefined, Acc,
                        gen_hook:hook_params()) -> Acc | term().
run_for_host_type(HookName, undefined, Acc, Params) ->
    ?LOG_ERROR(#{what => undefined_host_type,
                 text => <<"Running hook for an undefined host type">>,
                 hook_name => HookName, hook_acc => Acc, hook_args => Params}),
    Acc;
run_for_host_type(HookName, HostType, Acc, Params) when is_binary(HostType), is_map(Params) ->
    {_OkOrStop, Result} = gen_hook:run_fold(HookName, HostType, Acc, Params),
    Result.
