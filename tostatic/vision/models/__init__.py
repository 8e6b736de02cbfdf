"""paddle.vision.models: every architecture of Paddle 3.3.1's model zoo, with Paddle's
constructors, factory functions, arguments, sublayer names, state-dict keys and parameter
shapes, so a Paddle model's weights load with `set_state_dict`. `pretrained=True` raises
(tostatic downloads nothing): load the weights as a state dict instead."""
from tostatic.vision.models._utils import PretrainedWeightsError
from tostatic.vision.models.alexnet import AlexNet, alexnet
from tostatic.vision.models.densenet import (
    DenseNet,
    densenet121,
    densenet161,
    densenet169,
    densenet201,
    densenet264,
)
from tostatic.vision.models.googlenet import GoogLeNet, googlenet
from tostatic.vision.models.inceptionv3 import InceptionV3, inception_v3
from tostatic.vision.models.lenet import LeNet
from tostatic.vision.models.mobilenetv1 import MobileNetV1, mobilenet_v1
from tostatic.vision.models.mobilenetv2 import MobileNetV2, mobilenet_v2
from tostatic.vision.models.mobilenetv3 import (
    MobileNetV3Large,
    MobileNetV3Small,
    mobilenet_v3_large,
    mobilenet_v3_small,
)
from tostatic.vision.models.resnet import (
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    resnext50_64x4d,
    resnext101_32x4d,
    resnext101_64x4d,
    resnext152_32x4d,
    resnext152_64x4d,
    wide_resnet50_2,
    wide_resnet101_2,
)
from tostatic.vision.models.shufflenetv2 import (
    ShuffleNetV2,
    shufflenet_v2_swish,
    shufflenet_v2_x0_5,
    shufflenet_v2_x0_25,
    shufflenet_v2_x0_33,
    shufflenet_v2_x1_0,
    shufflenet_v2_x1_5,
    shufflenet_v2_x2_0,
)
from tostatic.vision.models.squeezenet import SqueezeNet, squeezenet1_0, squeezenet1_1
from tostatic.vision.models.vgg import VGG, vgg11, vgg13, vgg16, vgg19

__all__ = [
    "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext50_64x4d", "resnext101_32x4d", "resnext101_64x4d",
    "resnext152_32x4d", "resnext152_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "VGG", "vgg11", "vgg13", "vgg16", "vgg19",
    "MobileNetV1", "mobilenet_v1", "MobileNetV2", "mobilenet_v2",
    "MobileNetV3Small", "MobileNetV3Large", "mobilenet_v3_small", "mobilenet_v3_large",
    "LeNet",
    "DenseNet", "densenet121", "densenet161", "densenet169", "densenet201", "densenet264",
    "AlexNet", "alexnet", "InceptionV3", "inception_v3",
    "SqueezeNet", "squeezenet1_0", "squeezenet1_1", "GoogLeNet", "googlenet",
    "ShuffleNetV2", "shufflenet_v2_x0_25", "shufflenet_v2_x0_33", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "shufflenet_v2_swish",
]
